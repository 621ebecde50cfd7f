"""Installs rllib_mamt. Torch's range is left open on purpose: install the CPU
build (`pip install torch==2.13.0`) first, as README's quickstart does."""

from setuptools import find_packages, setup

# Statistics of benchmarks/table10_report.py. rliable 1.2 requires arch < 8
# (arch 8 dropped the random_state argument rliable passes), and arch 7 does
# not import under pandas 3 (pandas changed deprecate_kwarg), hence pandas < 3.
# statsmodels: the t-test power behind the report's seeds-to-separate table.
BENCH_REQUIREMENTS = ["rliable>=1.2", "arch<8", "pandas<3", "statsmodels>=0.13"]

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
        "test": ["pytest>=7"] + BENCH_REQUIREMENTS,
        "viz": ["tensorboard"],
        "bench": BENCH_REQUIREMENTS,
    },
    entry_points={"console_scripts": ["rllib=rllib_mamt.cli:main"]},
)
