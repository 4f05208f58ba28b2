"""The `shrew-workspace` meta-distribution: installs every Shrew package at one version."""

from setuptools import setup

VERSION = "0.1.0"
PACKAGES = ["shrew-core", "shrew-cpu", "shrew-nn", "shrew-optim", "shrew-ir", "shrew-data",
            "shrew", "shrew-cli"]

setup(
    name="shrew-workspace",
    version=VERSION,
    description="Every Shrew package at one version (the CUDA backend via the `cuda` extra).",
    packages=[],
    install_requires=[f"{name}=={VERSION}" for name in PACKAGES],
    extras_require={"cuda": [f"shrew-cuda[gpu]=={VERSION}"]},
)
