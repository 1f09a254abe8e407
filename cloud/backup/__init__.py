"""Backups the cloud makes itself: SQLite databases, and the keys kept outside the database.

PostgreSQL deployments back up with pgBackRest (ansible/roles/anju_cloud, docs/backup.md).
"""
