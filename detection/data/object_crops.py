"""Object crops of a detection dataset as an image-classification set.

Used to pretrain a backbone on the built-in data (the paper's ImageNet
pretraining, in miniature): each non-crowd object becomes one sample, its box
grown by some context, squared, and resized to a fixed size.
"""
import json

import cv2
import numpy as np
import torch


class ObjectCrops(torch.utils.data.Dataset):
    def __init__(self, detection_dataset, size=64, context=0.25, augment=False, seed=0):
        self.source, self.size, self.context, self.augment = detection_dataset, size, context, augment
        self.class_names = detection_dataset.class_names
        self.items = []  # (image_id, box, label)
        for image_id in detection_dataset.image_ids:
            target = detection_dataset.annotations(image_id)
            self.items += [(image_id, box, int(label)) for box, label in zip(target["boxes"], target["labels"])]
        self._images = {}  # decoded once: the built-in set is small
        self._rng = np.random.default_rng(seed)

    def __len__(self):
        return len(self.items)

    def _image(self, image_id):
        if image_id not in self._images:
            self._images[image_id] = self.source.read_image(image_id)
        return self._images[image_id]

    def __getitem__(self, index):
        image_id, (x1, y1, x2, y2), label = self.items[index]
        side = max(x2 - x1, y2 - y1) * (1 + 2 * self.context)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        if self.augment:  # scale and position jitter, then a random flip
            side *= self._rng.uniform(0.85, 1.25)
            cx, cy = cx + self._rng.uniform(-0.1, 0.1) * side, cy + self._rng.uniform(-0.1, 0.1) * side
        scale = self.size / side
        # one affine warp crops, pads with the border and resizes; pixel i's centre is at i + 0.5 in box
        # coordinates (as cv2.resize samples), so centres map as (x - 0.5) * scale + 0.5
        warp = np.array([[scale, 0, self.size / 2 - 0.5 - scale * (cx - 0.5)],
                         [0, scale, self.size / 2 - 0.5 - scale * (cy - 0.5)]])
        crop = cv2.warpAffine(self._image(image_id), warp, (self.size, self.size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        if self.augment and self._rng.random() < 0.5:
            crop = crop[:, ::-1]
        tensor = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float().div_(255)
        return tensor, label - 1  # classifier targets are 0-based

    def state_dict(self):
        """The jitter RNG's state, so a resumed pretraining run crops as an uninterrupted one would."""
        return {"rng": json.dumps(self._rng.bit_generator.state)}

    def load_state_dict(self, state):
        self._rng.bit_generator.state = json.loads(state["rng"])
