"""The deployable apps: they read the deployment spec and compose the library's constructs
(AWS, ``stacks/aws``) and components (Azure, ``stacks/azure``) per environment."""
