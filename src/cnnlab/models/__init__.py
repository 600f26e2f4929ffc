"""The model zoo: one module per family and the registry behind `create_model`."""

from cnnlab.models.alexnet import AlexNet
from cnnlab.models.compact_resnet import CompactResNet
from cnnlab.models.densenet import DenseBlock, DenseNet, transition_block
from cnnlab.models.googlenet import GoogLeNet, Inception
from cnnlab.models.init import init_weights
from cnnlab.models.inputs import check_input_size, min_input_size, output_shape
from cnnlab.models.interop import load_torchvision
from cnnlab.models.lenet import LeNet
from cnnlab.models.nin import NiN, nin_block
from cnnlab.models.registry import (
    ModelInfo,
    Recipe,
    create_model,
    list_models,
    model_info,
    register,
)
from cnnlab.models.regnet import AnyNet, RegNetX, regnet_stages
from cnnlab.models.resnet import Residual, ResNet, ResNeXtBlock
from cnnlab.models.vgg import VGG, vgg_block

__all__ = [
    "AlexNet",
    "AnyNet",
    "CompactResNet",
    "DenseBlock",
    "DenseNet",
    "GoogLeNet",
    "Inception",
    "LeNet",
    "ModelInfo",
    "NiN",
    "Recipe",
    "RegNetX",
    "ResNeXtBlock",
    "ResNet",
    "Residual",
    "VGG",
    "check_input_size",
    "create_model",
    "init_weights",
    "list_models",
    "load_torchvision",
    "min_input_size",
    "model_info",
    "nin_block",
    "output_shape",
    "regnet_stages",
    "register",
    "transition_block",
    "vgg_block",
]
