"""Helpers for the interoperability tests against independent stacks (namespaces, peers, capture)."""
