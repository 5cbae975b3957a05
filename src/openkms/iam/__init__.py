"""Accounts, principals and access keys."""
