"""The Anju cloud controller: portfolio, leases, billing, access and gateway fleet."""
