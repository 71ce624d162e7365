"""The CIFAR ResNets: ResNet-14's shape, parameter count and initialisation as in the original code."""

from __future__ import annotations

import torch

from restudy.registry import create


def _count(m):
    return sum(p.numel() for p in m.parameters())


def test_resnet14_structure_and_size():
    m = create("model", "resnet14", input_shape=(3, 32, 32), num_classes=10)
    convs = [x for x in m.modules() if isinstance(x, torch.nn.Conv2d)]
    assert len(convs) == 13                       # stem + 12 block convs: no 1x1 shortcut convs
    assert sum(1 for x in m.modules() if isinstance(x, torch.nn.Linear)) == 1
    # conv weights: 3*16*9 + 4*16*16*9 + (16*32 + 3*32*32)*9 + (32*64 + 3*64*64)*9; fc 64*10+10;
    # BN: 2 per block (2*(16*4 + 32*4 + 64*4)) + stem 2*16 + two shortcut BNs 2*(16+32)
    conv = 3 * 16 * 9 + 4 * 16 * 16 * 9 + (16 * 32 + 3 * 32 * 32) * 9 + (32 * 64 + 3 * 64 * 64) * 9
    bn = 2 * (16 * 4 + 32 * 4 + 64 * 4) + 2 * 16 + 2 * (16 + 32)
    assert _count(m) == conv + bn + 64 * 10 + 10
    out = m(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_resnet14_residual_branches_start_at_zero_and_bn_names_match_the_original():
    m = create("model", "resnet14", input_shape=(3, 32, 32), num_classes=10)
    names = dict(m.named_parameters())
    second_bns = [n for n in names if n.endswith("bn2.weight")]
    assert len(second_bns) == 6 and all(torch.all(names[n] == 0) for n in second_bns)
    # The downsampling BatchNorm has no "bn" in its name (it lands in the plain lr group).
    shortcut_bn = [n for n in names if "shortcut" in n]
    assert shortcut_bn and all("bn" not in n for n in shortcut_bn)


def test_resnet34_runs_on_cifar100_shape():
    m = create("model", "resnet34", input_shape=(3, 32, 32), num_classes=100, width=8)
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 100)


def test_bias_and_bn_scales_get_the_lr_multiplier_like_the_original():
    from restudy.optim import param_groups, sgd

    m = create("model", "resnet14", input_shape=(3, 32, 32), num_classes=10)
    groups = param_groups(m, 0.1)
    names = {id(p): n for n, p in m.named_parameters()}
    slow = {names[id(p)] for p in groups[0]["params"]}
    assert groups[0]["lr_mult"] == 0.1 and groups[1]["lr_mult"] == 1.0
    assert "fc.bias" in slow and "bn1.weight" in slow and "layers.0.bn2.weight" in slow
    assert "layers.2.shortcut.body.1.weight" not in slow   # no "bn" in its name: full lr (quirk kept)
    assert "conv1.weight" not in slow
    assert len(param_groups(m, 1.0)) == 1
    opt = sgd(groups, lr=0.4, momentum=0.9)
    assert len(opt.param_groups) == 2


def test_the_training_loop_applies_each_group_lr_multiplier():
    from restudy.optim import constant, param_groups, sgd
    from restudy.seeding import generator
    from restudy.train import train

    m = create("model", "fc", input_shape=(4,), num_classes=3, hidden=1, width=8, bias=True)
    opt = sgd(param_groups(m, 0.1), lr=0.5)
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    train(m, x, y, x, y, optimizer=opt, schedule=constant(lr=0.5), epochs=1, batch_size=16,
          order=generator(0))
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.5]
