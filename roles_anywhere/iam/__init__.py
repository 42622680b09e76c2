"""IAM: ARN shapes, trust policy documents, and an evaluator of their conditions."""
