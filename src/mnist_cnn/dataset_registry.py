"""The MNIST family: for each dataset its files, where to fetch them, their pinned hashes,
class names, layout quirks and licence. Pure data and look-ups; no Keras, no network.

Hashes: `sha256` is of a file as published (the .gz or .zip a download fetches); `raw_sha256`,
where known, is of its decompressed IDX bytes, which identify the data whatever the compression
(Debian and the packaged MNIST re-compress the files, so their .gz bytes differ). Each entry
says where its hashes came from. The module is named `dataset_registry`, not `datasets`,
because `datasets/` beside it holds the packaged MNIST files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mnist_cnn import MnistCnnError

SPLITS = ("train", "test")
DIGITS = tuple(str(digit) for digit in range(10))
STANDARD_FILES = {  # the names MNIST, Fashion-MNIST and KMNIST share, without ".gz"
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# tensorflow-datasets pins each download's size and SHA-256 in
# tensorflow_datasets/url_checksums/<name>.txt (github.com/tensorflow/datasets).
TFDS = "tensorflow-datasets url_checksums/{}.txt"


class UnknownDatasetError(MnistCnnError):
    """A dataset name that the registry does not know."""


@dataclass(frozen=True)
class RemoteFile:
    """One published file: `name` as on the server (e.g. "train-images-idx3-ubyte.gz")."""

    name: str
    size: int  # bytes, as published
    sha256: str  # of the file as published
    raw_sha256: str | None = None  # of the decompressed IDX bytes, where known

    @property
    def stem(self) -> str:
        """The IDX file's name without its compression suffix."""
        return self.name.removesuffix(".gz")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    homepage: str
    licence: str
    class_names: tuple[str, ...]
    # split -> (images file stem, labels file stem), as found on disk without ".gz"
    split_files: dict[str, tuple[str, str]]
    # What is fetched: the four IDX files, or one archive (EMNIST) holding them as members.
    remote_files: tuple[RemoteFile, ...]
    base_urls: tuple[str, ...]  # official first, then known mirrors; file URL = base + name
    hash_source: str  # where sha256 / raw_sha256 came from
    archive_members: dict[str, str] = field(default_factory=dict)  # stem -> member in archive
    transposed: bool = False  # images stored column-major: transpose to show them upright
    notes: str = ""

    @property
    def stems(self) -> tuple[str, ...]:
        return tuple(stem for split in SPLITS for stem in self.split_files[split])

    @property
    def archive(self) -> RemoteFile | None:
        return self.remote_files[0] if self.archive_members else None

    def remote_file(self, stem: str) -> RemoteFile | None:
        """The published IDX file `stem` (None for archive members: they have no own hash)."""
        return next((item for item in self.remote_files if item.stem == stem), None)

    def digits(self) -> bool:
        """True when the classes are the digits 0-9 (preprocessing for photos applies)."""
        return self.class_names == DIGITS


def _files(table: str) -> tuple[RemoteFile, ...]:
    """Entries of "name size sha256 [raw raw_sha256]" (sizes and hashes as published)."""
    tokens, files = table.split(), []
    while tokens:
        name, size, sha256, *tokens = tokens
        raw = None
        if tokens[:1] == ["raw"]:
            _, raw, *tokens = tokens
        files.append(RemoteFile(name, int(size), sha256, raw))
    return tuple(files)


_EMNIST_ZIP = RemoteFile(
    "gzip.zip", 561_753_746, "fb9bb67e33772a9cc0b895e4ecf36d2cf35be8b709693c3564cea2a019fcda8e"
)
_EMNIST_BASES = (
    "https://www.itl.nist.gov/iaui/vip/cs_links/EMNIST/",
    "https://biometrics.nist.gov/cs_links/EMNIST/",  # torchvision's URL (md5 58c8d27c...)
)
_EMNIST_NOTES = (
    "one 535 MiB zip for all six EMNIST splits; the zip is verified, then the four members "
    "are extracted (zip CRC-32 checked; no published hash exists per member, so a --data-dir "
    "of EMNIST files is recognised by their file names only); images are stored transposed"
)


def _emnist(subset: str, title: str, counts: str) -> DatasetInfo:
    files = {
        split: (
            f"emnist-{subset}-{split}-images-idx3-ubyte",
            f"emnist-{subset}-{split}-labels-idx1-ubyte",
        )
        for split in SPLITS
    }
    return DatasetInfo(
        name=f"emnist-{subset}",
        title=f"{title} ({counts})",
        homepage="https://www.nist.gov/itl/products-and-services/emnist-dataset",
        licence="NIST: U.S. Government work, free to use with attribution (Cohen et al. 2017)",
        class_names=DIGITS,
        split_files=files,
        remote_files=(_EMNIST_ZIP,),
        base_urls=_EMNIST_BASES,
        hash_source=TFDS.format("emnist"),
        archive_members={stem: f"gzip/{stem}.gz" for pair in files.values() for stem in pair},
        transposed=True,
        notes=_EMNIST_NOTES,
    )


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        title="MNIST handwritten digits (60,000 train, 10,000 test; packaged)",
        homepage="https://yann.lecun.com/exdb/mnist/",
        licence="CC BY-SA 3.0 (Yann LeCun, Corinna Cortes, Christopher J.C. Burges)",
        class_names=DIGITS,
        split_files=STANDARD_FILES,
        remote_files=_files(
            """
            train-images-idx3-ubyte.gz 9912422
                440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609
                raw ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
            train-labels-idx1-ubyte.gz 28881
                3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c
                raw 65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
            t10k-images-idx3-ubyte.gz 1648877
                8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6
                raw 0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
            t10k-labels-idx1-ubyte.gz 4542
                f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6
                raw ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
            """
        ),
        base_urls=(
            "https://storage.googleapis.com/cvdf-datasets/mnist/",  # tensorflow-datasets
            "https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision
        ),
        hash_source=TFDS.format("mnist")
        + "; raw_sha256: datasets/mnist/SHA256SUMS.raw (the packaged files, decompressed)",
        notes="packaged with mnist-cnn: trains with no download",
    ),
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist",
        title="Fashion-MNIST, Zalando article images (60,000 train, 10,000 test)",
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        licence="MIT (Zalando SE)",
        class_names=tuple(
            "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot".split(",")
        ),
        split_files=STANDARD_FILES,
        remote_files=_files(
            """
            train-images-idx3-ubyte.gz 26421880
                3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84
                raw c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888
            train-labels-idx1-ubyte.gz 29515
                a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845
                raw bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9
            t10k-images-idx3-ubyte.gz 4422102
                346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073
                raw 5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b
            t10k-labels-idx1-ubyte.gz 5148
                67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5
                raw 0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34
            """
        ),
        base_urls=(
            # The publisher's own links are plain HTTP (fashion-mnist.s3-website.eu-central-1
            # .amazonaws.com), so only the HTTPS copies are tried unless --mirror names one.
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",  # keras.datasets
        ),
        # raw_sha256: Debian's dataset-fashion-mnist files, decompressed. Their .gz files differ
        # from the pinned ones only in the gzip header (no file name, a 2020 time stamp): with
        # the name and the time stamp put back (2017-08-31 10:50:06 UTC for train, 10:50:27 for
        # t10k), each hashes to the pin above (tests/test_dataset_registry.py checks it).
        hash_source=TFDS.format("fashion_mnist")
        + "; raw_sha256: Debian dataset-fashion-mnist, decompressed, header-checked",
        notes="Debian/Ubuntu package dataset-fashion-mnist installs the same data, re-compressed",
    ),
    "kmnist": DatasetInfo(
        name="kmnist",
        title="Kuzushiji-MNIST, cursive Japanese hiragana (60,000 train, 10,000 test)",
        homepage="https://github.com/rois-codh/kmnist",
        licence="CC BY-SA 4.0 (ROIS-DS Center for Open Data in the Humanities, NIJL)",
        # rois-codh/kmnist kmnist_classmap.csv: U+304A ... U+3092, with their romanisation
        class_names=tuple("お o,き ki,す su,つ tsu,な na,は ha,ま ma,や ya,れ re,を wo".split(",")),
        split_files=STANDARD_FILES,
        remote_files=_files(
            """
            train-images-idx3-ubyte.gz 18165135
                51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4
            train-labels-idx1-ubyte.gz 29497
                e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17
            t10k-images-idx3-ubyte.gz 3041136
                edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5
            t10k-labels-idx1-ubyte.gz 5120
                20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c
            """
        ),
        base_urls=(
            "https://codh.rois.ac.jp/kmnist/dataset/kmnist/",  # tensorflow-datasets uses http://
        ),
        hash_source=TFDS.format("kmnist") + " (no published hash of the decompressed files)",
    ),
    "emnist-digits": _emnist(
        "digits", "EMNIST Digits, NIST handwritten digits", "240,000 train, 40,000 test"
    ),
    "emnist-mnist": _emnist(
        "mnist", "EMNIST MNIST, NIST digits in MNIST's proportions", "60,000 train, 10,000 test"
    ),
    "qmnist": DatasetInfo(
        name="qmnist",
        title="QMNIST, MNIST reconstructed from NIST (60,000 train, 60,000 test)",
        homepage="https://github.com/facebookresearch/qmnist",
        licence="BSD (facebookresearch/qmnist LICENSE); images from NIST SD19 and MNIST",
        class_names=DIGITS,
        split_files={
            "train": ("qmnist-train-images-idx3-ubyte", "qmnist-train-labels-idx2-int"),
            "test": ("qmnist-test-images-idx3-ubyte", "qmnist-test-labels-idx2-int"),
        },
        remote_files=_files(
            """
            qmnist-train-images-idx3-ubyte.gz 9704059
                9e26a7bf1683614e065d7b76460ccd52807165b3f22561fb782bd9f38c52b51d
            qmnist-train-labels-idx2-int.gz 463024
                2c05dc77f6b916b38e455e97ab129a42a444f3dbef09b278a366f82904e0dd9f
            qmnist-test-images-idx3-ubyte.gz 9742279
                43fc22bf7498b8fc98de98369d72f752d0deabc280a43a7bcc364ab19e57b375
            qmnist-test-labels-idx2-int.gz 526800
                9fbcbe594c3766fdf4f0b15c5165dc0d1e57ac604e01422608bb72c906030d06
            """
        ),
        base_urls=("https://raw.githubusercontent.com/facebookresearch/qmnist/master/",),
        hash_source=TFDS.format("qmnist") + " (no published hash of the decompressed files)",
        notes="labels are IDX int32 rows of 8 fields; the class is the first",
    ),
}


def get_dataset(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise UnknownDatasetError(
            f"unknown dataset {name!r} (expected one of {', '.join(DATASETS)})"
        ) from None


def find_by_hash(sha256: str) -> list[tuple[DatasetInfo, str]]:
    """(dataset, file stem) pairs whose published or decompressed hash is `sha256`."""
    return [
        (info, item.stem)
        for info in DATASETS.values()
        for item in info.remote_files
        if sha256 in (item.sha256, item.raw_sha256)
    ]


def find_by_file_names(stems: set[str]) -> DatasetInfo | None:
    """The one dataset whose own file names (not the shared standard ones) are all in `stems`."""
    for info in DATASETS.values():
        if info.split_files != STANDARD_FILES and set(info.stems) <= stems:
            return info
    return None
