"""PyTorch twins of the four benchmarked networks, written inline (torchvision is not needed).

Each builds the same architecture as jaxseg's registry model of the same name in its default
configuration, so `train_step.py --torch` times the same work:

* `resnet50`: torchvision's ResNet-50 v1.5 (stride on the 3x3 convolution), 25,557,032
  parameters like `jaxseg.models.resnet50`.
* `vgg16`: VGG-16 (configuration D) with torchvision's head (adaptive 7x7 average pool,
  4096-4096-classes with dropout).
* `fcn8s`: FCN-8s on VGG-16 as `jaxseg.models.fcn8s` builds it by default: input zero-padded to
  a multiple of 32, fc6 7x7 padded 3, fc7 1x1, dropout 0.5, score layers 1x1, fixed bilinear
  transposed convolutions (kernel 2f, stride f, padding f/2; frozen, as `learn_upsampling=False`).
* `deeplab_v3`: DeepLab v3 on ResNet-50 at output stride 8 as `jaxseg.models.deeplab_v3`:
  stages 3 and 4 dilated (2, then 4 times the multi-grid (1, 2, 4)), ASPP with a 1x1 branch,
  three 3x3 atrous branches at rates (12, 24, 36), image pooling, a 1x1 projection (256, batch
  norm, ReLU), a 1x1 classifier and bilinear upsampling to the input size.
"""


def _bottleneck(nn, torch):

  class Bottleneck(nn.Module):
    def __init__(self, c_in, width, stride, dilation=1):
      super().__init__()
      c_out = 4 * width
      self.body = nn.Sequential(
        nn.Conv2d(c_in, width, 1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.Conv2d(width, width, 3, stride, dilation, dilation, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.Conv2d(width, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out),
      )
      self.shortcut = nn.Identity()
      if stride != 1 or c_in != c_out:
        self.shortcut = nn.Sequential(
          nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
        )

    def forward(self, x):
      return torch.relu(self.body(x) + self.shortcut(x))

  return Bottleneck


def _resnet50_features(torch, output_stride=32, multi_grid=(1, 1, 1)):
  nn = torch.nn
  bottleneck = _bottleneck(nn, torch)
  layers = [
    nn.Conv2d(3, 64, 7, 2, 3, bias=False),
    nn.BatchNorm2d(64),
    nn.ReLU(inplace=True),
    nn.MaxPool2d(3, 2, 1),
  ]
  c_in, stride_now, dilation = 64, 4, 1
  for stage, blocks in enumerate((3, 4, 6, 3)):
    width = 64 * 2**stage
    stride = 2 if stage else 1
    if stride_now * stride > output_stride:  # dilate instead of striding
      dilation, stride = dilation * stride, 1
    stride_now *= stride
    for index in range(blocks):
      rate = dilation * (multi_grid[index] if stage == 3 else 1)
      layers.append(bottleneck(c_in, width, stride if index == 0 else 1, rate))
      c_in = 4 * width
  return nn.Sequential(*layers)


def resnet50(torch, num_classes=1000):
  nn = torch.nn
  return nn.Sequential(
    _resnet50_features(torch), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, num_classes)
  )


_VGG16 = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M')


def _vgg16_blocks(torch):
  """The 13 convolutions and 5 pools as a list of 5 blocks (pool3, pool4 are FCN's skips)."""
  nn = torch.nn
  blocks, block, c_in = [], [], 3
  for item in _VGG16:
    if item == 'M':
      block.append(nn.MaxPool2d(2, 2))
      blocks.append(nn.Sequential(*block))
      block = []
    else:
      block += [nn.Conv2d(c_in, item, 3, padding=1), nn.ReLU(inplace=True)]
      c_in = item
  return blocks


def vgg16(torch, num_classes=1000):
  nn = torch.nn
  return nn.Sequential(
    *_vgg16_blocks(torch),
    nn.AdaptiveAvgPool2d(7),
    nn.Flatten(),
    nn.Linear(512 * 49, 4096),
    nn.ReLU(inplace=True),
    nn.Dropout(0.5),
    nn.Linear(4096, 4096),
    nn.ReLU(inplace=True),
    nn.Dropout(0.5),
    nn.Linear(4096, num_classes),
  )


def _bilinear_up(torch, channels, factor):
  nn = torch.nn
  up = nn.ConvTranspose2d(channels, channels, 2 * factor, factor, factor // 2, bias=False)
  up.weight.requires_grad_(False)  # jaxseg's default: fixed bilinear kernels
  return up


def fcn8s(torch, num_classes=21):
  nn = torch.nn
  functional = nn.functional

  class FCN8s(nn.Module):
    def __init__(self):
      super().__init__()
      blocks = _vgg16_blocks(torch)
      self.to_pool3 = nn.Sequential(*blocks[:3])
      self.to_pool4, self.to_pool5 = blocks[3], blocks[4]
      self.fc = nn.Sequential(
        nn.Conv2d(512, 4096, 7, padding=3),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Conv2d(4096, 4096, 1),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Conv2d(4096, num_classes, 1),
      )
      self.score_pool4 = nn.Conv2d(512, num_classes, 1)
      self.score_pool3 = nn.Conv2d(256, num_classes, 1)
      self.up2 = _bilinear_up(torch, num_classes, 2)
      self.up_pool4 = _bilinear_up(torch, num_classes, 2)
      self.up8 = _bilinear_up(torch, num_classes, 8)

    def forward(self, x):
      height, width = x.shape[2:]
      x = functional.pad(x, (0, -width % 32, 0, -height % 32))
      pool3 = self.to_pool3(x)
      pool4 = self.to_pool4(pool3)
      score = self.up2(self.fc(self.to_pool5(pool4))) + self.score_pool4(pool4)
      score = self.up_pool4(score) + self.score_pool3(pool3)
      return self.up8(score)[:, :, :height, :width]

  return FCN8s()


def deeplab_v3(torch, num_classes=21):
  nn = torch.nn
  functional = nn.functional

  def branch(kernel, rate):
    return nn.Sequential(
      nn.Conv2d(2048, 256, kernel, padding=rate * (kernel // 2), dilation=rate, bias=False),
      nn.BatchNorm2d(256),
      nn.ReLU(inplace=True),
    )

  class DeepLabV3(nn.Module):
    def __init__(self):
      super().__init__()
      self.backbone = _resnet50_features(torch, output_stride=8, multi_grid=(1, 2, 4))
      self.branches = nn.ModuleList([branch(1, 1)] + [branch(3, r) for r in (12, 24, 36)])
      self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), branch(1, 1))
      self.project = nn.Sequential(
        nn.Conv2d(5 * 256, 256, 1, bias=False), nn.BatchNorm2d(256), nn.ReLU(inplace=True)
      )
      self.classifier = nn.Conv2d(256, num_classes, 1)

    def forward(self, x):
      features = self.backbone(x)
      pooled = self.image_pool(features).expand(-1, -1, *features.shape[2:])
      y = torch.cat([b(features) for b in self.branches] + [pooled], 1)
      y = self.classifier(self.project(y))
      return functional.interpolate(y, size=x.shape[2:], mode='bilinear', align_corners=False)

  return DeepLabV3()


MODELS = {'resnet50': resnet50, 'vgg16': vgg16, 'fcn8s': fcn8s, 'deeplab_v3': deeplab_v3}
