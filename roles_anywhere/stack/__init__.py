"""The validated stack: config -> Spec, Spec -> stack outputs, stack outputs -> Deployment."""
