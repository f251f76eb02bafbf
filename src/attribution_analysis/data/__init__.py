"""Loading, validating and preparing the workspace's raw tables for modelling."""
