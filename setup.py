"""Installs the vae, trainers and launch packages and the vae-* programs."""

import setuptools

setuptools.setup(
    name="vae-framework",
    version="0.1.0",
    description=(
        "Low-level TensorFlow 2 training framework for VAEs, "
        "conditional VAEs and VAE-GANs."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=setuptools.find_packages(
        include=["vae", "vae.*", "trainers", "trainers.*", "launch", "launch.*"]
    ),
    package_data={"launch": ["configs/*.flags"]},
    # Lower bounds are the versions this project is tested with.
    install_requires=[
        "tensorflow>=2.21",
        "tensorflow-probability>=0.25",
        "tf-keras>=2.21",
        "numpy>=2.0",
        "imageio>=2.38",
        "absl-py>=2.3",
        # TensorFlow 2.21 no longer pulls TensorBoard in, and tf.summary
        # needs it to write scalars and images.
        "tensorboard>=2.21",
        # DCI disentanglement's importance matrix comes from random forests
        # (vae/disentanglement.py).
        "scikit-learn>=1.9",
        # Figures with axes (latent scatter plots, training curves, the toy
        # 2-D plots; vae/figures.py): labels, ticks and legends.
        "matplotlib>=3.11",
    ],
    extras_require={"test": ["pytest>=9.0", "pytest-xdist>=3.8", "ruff==0.17.5"]},
    entry_points={
        "console_scripts": [
            "vae-train=launch.entry_points:train",
            "vae-train-vaegan=launch.entry_points:train_vaegan",
            "vae-evaluate=launch.evaluate:run_main",
            "vae-compare=launch.compare:run_main",
            "vae-generate=launch.generate:run_main",
            "vae-toy2d=launch.toy2d:run_main",
            "vae-submit=launch.submit:run_main",
            "vae-benchmark=launch.benchmark:run_main",
        ],
    },
)
