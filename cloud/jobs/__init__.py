"""Scheduled jobs (billing runs, late fees, overdue reminders, sending notifications).

Several cloud instances may run the scheduler; a row lock in `job_locks` makes exactly one of them
do each job for each day (see lock.py).
"""
