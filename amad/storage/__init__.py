"""Object storage (a local folder or S3) and the model registry on top of it.

Never imports ``nn`` or ``detector``.
"""
