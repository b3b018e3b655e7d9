"""Shipping the service: the Elastic Beanstalk source bundle (eb_bundle) and its deployment (eb_rollout, with
eb_deploy its command line)."""
