"""Central schema migrations (NNN_name.sql) and grants, read by bia_acq.central.schema."""
