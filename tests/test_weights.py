"""Weight sources: declarations, cache and hash checks, offline errors, local files, safe loading."""
import collections
import hashlib
import pickle
import struct
import urllib.error

import numpy as np
import pytest
import safetensors.torch
import torch
import torchvision

import backbones
from backbones import safe_pickle
from backbones.conversions.caffe2 import to_caffe2
from backbones.conversions.detectron2 import to_detectron2
from backbones.pretrained import CAFFE_MEAN, CAFFE_STD, IMAGENET_MEAN, IMAGENET_STD, PretrainedWeights
from backbones.weight_files import read_checkpoint_file

CAFFE_RGB_MEAN = tuple(m / 255 for m in (123.675, 116.280, 103.530))


# --- what each backbone declares ------------------------------------------------------------

def _sources(name):
    return backbones.get_entry(name).pretrained


def test_every_backbone_declares_its_sources():
    d2 = ["detectron2_R{}_FPN_3x", "detectron2_R{}_C4_3x"]
    assert {n: list(_sources(n)) for n in backbones.names()} == {
        "plain18": [], "plain34": [],
        "resnet18": ["torchvision", "timm_a1_in1k"], "resnet34": ["torchvision", "timm_a1_in1k"],
        "resnet50": ["torchvision", "torchvision_v2", "msra", *[s.format(50) for s in d2], "timm_a1_in1k"],
        "resnet101": ["torchvision", "torchvision_v2", "msra", *[s.format(101) for s in d2], "timm_a1_in1k"],
        "resnet152": ["torchvision", "torchvision_v2", "timm_a1_in1k"],
        "vgg16": ["torchvision"], "vgg19": ["torchvision"]}


def test_source_conventions():
    r50 = _sources("resnet50")
    assert r50["torchvision"].url.endswith("/resnet50-0676ba61.pth")  # IMAGENET1K_V1, as before
    assert r50["torchvision_v2"].url.endswith("/resnet50-11ad3fa6.pth")
    assert _sources("vgg19")["torchvision"].url.endswith("/vgg19-dcbb9e9d.pth")
    msra = r50["msra"]
    assert msra.url == "https://dl.fbaipublicfiles.com/detectron2/ImageNetPretrained/MSRA/R-50.pkl"
    assert _sources("resnet101")["msra"].url.endswith("/MSRA/R-101.pkl")
    assert r50["detectron2_R50_FPN_3x"].url == ("https://dl.fbaipublicfiles.com/detectron2/COCO-Detection/"
                                                "faster_rcnn_R_50_FPN_3x/137849458/model_final_280758.pkl")
    assert r50["timm_a1_in1k"].url == "https://huggingface.co/timm/resnet50.a1_in1k/resolve/main/model.safetensors"
    for name in ("msra", "detectron2_R50_FPN_3x", "detectron2_R50_C4_3x"):
        source = r50[name]
        assert source.input_space == "BGR" and source.options == {"stride_in_1x1": True}
        assert np.allclose(source.mean, CAFFE_RGB_MEAN) and np.allclose(source.std, [1 / 255] * 3)
    for source in (r50["torchvision"], r50["torchvision_v2"], r50["timm_a1_in1k"]):
        assert source.input_space == "RGB" and source.options == {}
        assert (source.mean, source.std) == (IMAGENET_MEAN, IMAGENET_STD)
    # no made-up hashes: torchvision's are in its file names, the others are recorded at first use
    assert all(s.sha256 is None for n in backbones.names() for s in _sources(n).values())
    assert "torch.hub" in r50["torchvision"].hash_check and "first use" in msra.hash_check
    # one cache file per source, even where URLs share a file name
    names = [s.file_name for n in backbones.names() for s in _sources(n).values()]
    assert len(names) == len(set(names)) and r50["timm_a1_in1k"].file_name == "timm-resnet50.a1_in1k.safetensors"


def test_vgg19_is_torchvisions_configuration_e():
    torch.manual_seed(0)
    reference = torchvision.models.vgg19().eval()
    ours = backbones.build("vgg19").eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours.classify(x), reference(x))
    assert [(s.channels, s.stride) for s in ours.stage_shapes().values()] == [
        (64, 1), (128, 2), (256, 4), (512, 8), (512, 16)]
    assert len(ours.stage_shapes()) == 5 and sum(isinstance(m, torch.nn.Conv2d) for m in ours.modules()) == 16


# --- downloads, cache, hashes ----------------------------------------------------------------

@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    return tmp_path / "hub" / "checkpoints"


def _offline(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)


def test_torchvision_v2_loads_from_the_cache(torch_home):
    reference = torchvision.models.resnet50()
    torch.save(reference.state_dict(), torch_home / "resnet50-11ad3fa6.pth")
    net = backbones.build("resnet50", pretrained="torchvision_v2")
    assert torch.equal(net.layer4[2].conv3.weight, reference.layer4[2].conv3.weight)
    assert net.weights_options == {} and net.layer2[0].conv2.stride == (2, 2)


@pytest.mark.parametrize("source, file", [("msra", "MSRA-R-50.pkl"),
                                          ("detectron2_R50_FPN_3x", "model_final_280758.pkl"),
                                          ("timm_a1_in1k", "timm-resnet50.a1_in1k.safetensors")])
def test_offline_errors_name_the_cache_path(torch_home, monkeypatch, source, file):
    _offline(monkeypatch)
    with pytest.raises(backbones.PretrainedWeightsUnavailable) as err:
        backbones.build("resnet50", pretrained=source)
    message = str(err.value)
    assert str(torch_home / file) in message and "--pretrained none" in message
    assert _sources("resnet50")[source].url in message


def _msra_file(path):
    """A small stand-in for MSRA's R-50.pkl: Caffe2 names, affine norms, a Python-2 style pickle."""
    net = backbones.build("resnet50", stride_in_1x1=True)
    blobs = {k: v.numpy() for k, v in to_caffe2(net.state_dict()).items()}
    _write_python2_pickle(path, blobs)
    return blobs


def test_unpublished_hash_is_recorded_at_first_use_and_checked_after(torch_home, monkeypatch, capsys):
    _offline(monkeypatch)  # the file is in the cache: no download
    path = torch_home / "MSRA-R-50.pkl"
    blobs = _msra_file(path)
    net = backbones.build("resnet50", pretrained="msra")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert (torch_home / "MSRA-R-50.pkl.sha256").read_text().split()[0] == digest
    assert digest in capsys.readouterr().err
    # what the weights need came with them
    assert net.layer2[0].conv1.stride == (2, 2) and net.weights_options == {"stride_in_1x1": True}
    assert (net.pixel_mean, net.pixel_std) == (CAFFE_MEAN, CAFFE_STD)
    assert torch.equal(net.conv1.weight, torch.from_numpy(blobs["conv1_w"]).flip(1))  # BGR -> RGB
    assert torch.equal(net.bn1.weight, torch.from_numpy(blobs["res_conv1_bn_s"]))
    backbones.build("resnet50", pretrained="msra")  # same file: fine
    with open(path, "ab") as f:
        f.write(b"changed")
    with pytest.raises(backbones.PretrainedWeightsUnavailable, match="MSRA-R-50.pkl is damaged or not the "
                       f"expected file .*expected {digest} from the hash recorded at first use"):
        backbones.build("resnet50", pretrained="msra")


def test_a_declared_sha256_is_checked(torch_home, tmp_path):
    path = torch_home / "mine.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    source = PretrainedWeights("mine", "https://example.invalid/mine.pth", sha256=digest)
    backbones.build("resnet18", pretrained=source)
    assert not (torch_home / "mine.pth.sha256").exists()
    wrong = PretrainedWeights("mine", "https://example.invalid/mine.pth", sha256="0" * 64)
    with pytest.raises(backbones.PretrainedWeightsUnavailable, match="mine.pth is damaged.*declared sha256"):
        backbones.build("resnet18", pretrained=wrong)


def test_a_cached_file_of_another_layout_is_refused(torch_home):
    torch.save(torchvision.models.resnet50().state_dict(), torch_home / "model_final_280758.pkl")
    with pytest.raises(backbones.PretrainedWeightsUnavailable, match="has torchvision names, not the expected "
                       "detectron2 ones"):
        backbones.build("resnet50", pretrained="detectron2_R50_FPN_3x")


def test_timm_safetensors_from_the_cache(torch_home):
    reference = torchvision.models.resnet18()  # timm's resnet18 has these names and shapes
    safetensors.torch.save_file(reference.state_dict(), str(torch_home / "timm-resnet18.a1_in1k.safetensors"))
    net = backbones.build("resnet18", pretrained="timm_a1_in1k")
    assert torch.equal(net.layer3[1].conv2.weight, reference.layer3[1].conv2.weight)
    assert (net.pixel_mean, net.pixel_std) == (IMAGENET_MEAN, IMAGENET_STD)


def test_options_the_weights_need_cannot_be_contradicted(torch_home):
    with pytest.raises(backbones.UserError, match="trained with stride_in_1x1=True"):
        backbones.build("resnet50", pretrained="msra", stride_in_1x1=False)  # refused before any download


# --- local files -----------------------------------------------------------------------------

def _detectron2_checkpoint(net, path):
    """detectron2's model-zoo format: numpy arrays under "model", pickled with protocol 2."""
    model = {"backbone.bottom_up." + k: v.numpy() for k, v in to_detectron2(net.state_dict()).items()}
    model["proposal_generator.rpn_head.conv.weight"] = np.zeros((256, 256, 3, 3), np.float32)
    with open(path, "wb") as f:
        pickle.dump({"model": model, "__author__": "Detectron2 Model Zoo"}, f, protocol=2)


def test_local_file_layouts_are_recognised(tmp_path):
    reference = backbones.build("resnet18")
    path = tmp_path / "model_final.pkl"
    _detectron2_checkpoint(reference, path)
    with pytest.warns(UserWarning, match="detectron2 names; assuming detectron2's defaults.*BGR"):
        guessed = backbones.build("resnet18", pretrained=str(path))
    assert torch.equal(guessed.conv1.weight, reference.conv1.weight.flip(1))
    assert (guessed.pixel_mean, guessed.pixel_std) == (CAFFE_MEAN, CAFFE_STD)
    # SOURCE:PATH: a local file with a declared source's conventions (RGB, ImageNet normalisation)
    told = backbones.build("resnet18", pretrained=f"torchvision:{path}")
    assert torch.equal(told.conv1.weight, reference.conv1.weight)
    assert torch.equal(told.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var)
    assert (told.pixel_mean, told.pixel_std) == (IMAGENET_MEAN, IMAGENET_STD)


def test_local_caffe2_file_gets_msra_conventions(tmp_path):
    path = tmp_path / "R-50.pkl"
    blobs = _msra_file(path)
    with pytest.warns(UserWarning, match="caffe2 names"):
        net = backbones.build("resnet50", pretrained=str(path))
    assert net.weights_options == {"stride_in_1x1": True} and net.layer2[0].conv1.stride == (2, 2)
    assert torch.equal(net.conv1.weight, torch.from_numpy(blobs["conv1_w"]).flip(1))


def test_bgr_sources_put_the_normalisation_into_the_detector(tmp_path):
    from detection import build_detector
    path = tmp_path / "R-50.pkl"
    _msra_file(path)
    model = build_detector(backbone="resnet50", pretrained=f"msra:{path}", num_classes=3, min_size=64, max_size=96)
    assert np.allclose(model.transform.image_mean, CAFFE_RGB_MEAN)
    assert np.allclose(model.transform.image_std, [1 / 255] * 3)


def test_a_detector_on_msra_weights_comes_back_from_its_checkpoint_unchanged(tmp_path):
    """The checkpoint rebuilds without the weight file: stride_in_1x1 and the normalisation come from its config."""
    from detection import build_detector
    from detection.engine.checkpoint import load_detector, save_checkpoint
    path = tmp_path / "R-50.pkl"
    _msra_file(path)
    model = build_detector(backbone="resnet50", pretrained=f"msra:{path}", num_classes=3, min_size=64, max_size=96)
    assert model.config.stride_in_1x1 is True
    saved = save_checkpoint(tmp_path / "m.pth", model, ["a", "b", "c"], [1, 2, 3], iteration=0)
    path.unlink()  # the weights must come from the checkpoint alone
    loaded, _ = load_detector(saved)
    assert loaded.config.stride_in_1x1 is True and np.allclose(loaded.transform.image_mean, CAFFE_RGB_MEAN)
    x = [torch.rand(3, 64, 80)]
    model.eval()
    features = model.backbone(model.transform(x)[0].tensors)
    again = loaded.backbone(loaded.transform(x)[0].tensors)
    assert all(torch.equal(features[k], again[k]) for k in features)


# --- safe loading --------------------------------------------------------------------------

def test_pickles_that_would_run_code_are_refused(tmp_path, code_running_pickle):
    path = tmp_path / "evil.pkl"
    marker = code_running_pickle(path, lambda payload: {"model": {"conv1.weight": payload}, "__author__": "x"})
    with pytest.raises(backbones.PretrainedWeightsUnavailable,
                       match=r"evil.pkl refers to (__builtin__|builtins|io)\.open.*refusing to load it"):
        backbones.build("resnet18", pretrained=str(path))
    assert not marker.exists()
    with pytest.raises(safe_pickle.UnsafePickleError, match="evil.pkl refers to"):
        safe_pickle.load(path)
    assert not marker.exists()


def test_only_latin1_byte_strings_are_decoded(tmp_path):
    path = tmp_path / "codec.pkl"
    path.write_bytes(b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x06\x00\x00\x00base64\x86R.")
    with pytest.raises(safe_pickle.UnsafePickleError, match="codec.pkl calls _codecs.encode with encoding 'base64"):
        safe_pickle.load(path)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_detectron2_style_pickles_load(tmp_path, protocol):
    model = collections.OrderedDict(
        [("backbone.bottom_up.stem.conv1.weight", np.random.rand(64, 3, 7, 7).astype(np.float32)),
         ("backbone.bottom_up.res2.0.conv1.norm.running_var", np.random.rand(64).astype(np.float32))])
    path = tmp_path / "model_final.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": model, "__author__": "Detectron2 Model Zoo", "matching_heuristics": True,
                     "iteration": np.int64(90000)}, f, protocol=protocol)
    state = read_checkpoint_file(path)
    assert list(state) == list(model) and all(torch.equal(state[k], torch.from_numpy(model[k])) for k in model)


def _write_python2_pickle(path, blobs):
    """Pickle as Python 2 did: byte strings (names, array data) as STRING opcodes, numpy.core names.

    Python 3 reads those back only with an 8-bit encoding, which is why Caffe2's
    files need ``encoding="latin1"``.
    """
    class Python2Pickler(pickle._Pickler):
        dispatch = dict(pickle._Pickler.dispatch)

        def save_str8(self, obj):
            n = len(obj)
            self.write((pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else
                        pickle.BINSTRING + struct.pack("<i", n)) + obj)
            self.memoize(obj)
        dispatch[bytes] = save_str8

    with open(path, "wb") as f:
        Python2Pickler(f, protocol=2).dump({k.encode(): v for k, v in blobs.items()})
    data = path.read_bytes().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    path.write_bytes(data)


def test_python2_latin1_pickles_load(tmp_path):
    blobs = {"conv1_w": np.random.rand(64, 3, 7, 7).astype(np.float32) + 1,  # non-ASCII bytes in the data
             "res_conv1_bn_s": np.arange(64, dtype=np.float32)}
    path = tmp_path / "R-50.pkl"
    _write_python2_pickle(path, blobs)
    assert b"numpy.core.multiarray" in path.read_bytes()
    with pytest.raises(UnicodeDecodeError):  # really a Python 2 pickle: ASCII decoding fails
        pickle.loads(path.read_bytes())
    state = read_checkpoint_file(path)
    assert set(state) == set(blobs) and all(torch.equal(state[k], torch.from_numpy(blobs[k])) for k in blobs)


def test_unknown_pretrained_values_list_the_sources():
    with pytest.raises(backbones.UnknownNameError, match="msra.*<source>:<path>"):
        backbones.build("resnet50", pretrained="msra2")
