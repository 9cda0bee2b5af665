"""Protocol codecs: one module per protocol family."""

from bia_acq.protocols.base import Chunk, Framer, Protocol, load_protocol, protocol_names

__all__ = ["Chunk", "Framer", "Protocol", "load_protocol", "protocol_names"]
