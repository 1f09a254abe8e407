"""The e-contract: a lease rendered as PDF (zh-CN or English) and the record of who signed it."""
