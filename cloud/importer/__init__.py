"""CSV import from an operator's old system: units, tenants and leases (UTF-8 or GBK)."""
