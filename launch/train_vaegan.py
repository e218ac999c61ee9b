r"""`vae-train-vaegan`: `vae-train` with the VAE-GAN as its default trainer.

    vae-train-vaegan --flagfile=launch/configs/cvae_gan.flags \
        --data_dir=../shared/data/mnist --workdir=runs/cvae_gan

is `vae-train --trainer=vaegan ...`: the model is `vae.vaegan.VaeGan`
(encoder, decoder and a discriminator whose inner layer measures
reconstructions), trained by `trainers.vaegan.VaeGanTrainer` with one
optimiser per network; everything else is vae-train's (launch/train.py).
"""

from launch import train


def run_main():
    """Console-script entry point (`vae-train-vaegan`)."""
    train.run_program("vaegan")


if __name__ == "__main__":
    run_main()
