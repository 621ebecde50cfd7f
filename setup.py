"""Installs rllib_mamt. Torch's range is left open on purpose: install the CPU
build (`pip install torch==2.13.0`) first, as README's quickstart does."""

from setuptools import find_packages, setup

setup(
    name="rllib_mamt",
    version="0.1.0",
    description=(
        "MAMT (multi-agent mirror descent with trust-region decomposition, "
        "ICLR 2022) and its MAAC / MAMD modes as a Ray RLlib algorithm plugin"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["rllib_mamt", "rllib_mamt.*"]),
    python_requires=">=3.10",
    install_requires=[
        "ray[rllib]==2.60.0",
        "torch>=2.2",
        "pettingzoo>=1.24",
        "supersuit>=3.9",
        "gymnasium",
        "mpe2",
        "box2d>=2.3.10",
        "numpy",
        "pyyaml",
        "matplotlib",
    ],
    extras_require={
        "test": ["pytest>=7"],
        "viz": ["tensorboard"],
    },
    entry_points={"console_scripts": ["rllib=rllib_mamt.cli:main"]},
)
