"""The Anju gateway: polls meters, drives doors, and keeps working when the internet is gone."""
