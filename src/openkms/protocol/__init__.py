"""Wire formats: AWS JSON 1.1 for KMS, AWS Query for the STS subset."""
