"""Helpers shared by test modules, each module named for what it holds.

Test modules import helpers from here (or take conftest's fixtures), never from one another:
tests/test_architecture.py checks it.
"""
