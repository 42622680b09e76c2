"""A local IAM Roles Anywhere: control plane and CreateSession on 127.0.0.1, IAM and STS from moto."""
