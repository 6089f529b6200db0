"""Presentation: tables for people (English or Chinese), JSON for machines."""
