"""The built-in policy pack: finops.yaml, its tests, and the price table."""
