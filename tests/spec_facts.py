"""What each chapter model must be, shared by the model and summary tests: the networks of the
d2l chapters on one-channel, ten-class Fashion-MNIST, at the input side each chapter trains with.

name: (input side, parameters, forward MFLOPs at batch 1, output shape of each top-level child
without the batch). A change to a model that alters what its chapter builds fails on these."""

LENET = "6x28x28 6x28x28 6x14x14 16x10x10 16x10x10 16x5x5 400 120 120 84 84 10"
SPEC_TABLE = {
    "lenet": (28, 61_706, 0.8, LENET),
    "lenet-modern": (28, 61_706, 0.8, LENET),
    "lenet-bn": (28, 44_878, 0.6, "6x24x24 6x24x24 6x24x24 6x12x12 16x8x8 16x8x8 16x8x8 16x4x4 "
                                  "256 120 120 120 84 84 84 10"),
    "alexnet": (224, 46_764_746, 1876.3,
                "96x54x54 96x26x26 256x26x26 256x12x12 384x12x12 384x12x12 256x12x12 256x5x5 "
                "6400 4096 4096 10"),
    "vgg11": (224, 128_806_154, 15094.5,
              "64x112x112 128x56x56 256x28x28 512x14x14 512x7x7 25088 4096 4096 10"),
    "vgg-small": (224, 43_093_322, 1024.3,
                  "16x112x112 32x56x56 64x28x28 128x14x14 128x7x7 6272 4096 4096 10"),
    "nin": (224, 1_992_166, 1524.6,
            "96x54x54 96x26x26 256x26x26 256x12x12 384x12x12 384x5x5 384x5x5 10x5x5 10x1x1 10"),
    "googlenet": (96, 5_977_530, 552.1, "64x24x24 192x12x12 480x6x6 832x3x3 1024 10"),
    "resnet18": (96, 11_178_378, 637.3, "64x24x24 64x24x24 128x12x12 256x6x6 512x3x3 10"),
    "densenet": (96, 758_226, 258.2, "64x24x24 192x24x24 96x12x12 224x12x12 112x6x6 240x6x6 "
                                     "120x3x3 248x3x3 10"),
    "regnetx32": (96, 179_290, 80.6, "32x48x48 32x24x24 80x12x12 10"),
}
