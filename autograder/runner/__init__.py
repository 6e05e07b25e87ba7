"""Code that runs inside the sandbox: the supervisor (``driver``) and the kernel-side harvest (``harvest``)."""
