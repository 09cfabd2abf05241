"""The registry of every data file the course uses: where it lives, where it comes from, its sha256.

Each :class:`Resource` is one file, identified by ``"<dataset folder>/<path>"`` (the layout of the
local mirror ``shared/data`` and of the cache, e.g. ``"mnist/train-images-idx3-ubyte.gz"`` or
``"movielens-100k/ml-100k/u.data"``). Sizes and checksums are the ones the mirror's READMEs state
(and that the mirror's files were checked against); the URLs are the canonical upstream downloads.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """One place a file can be downloaded from.

    ``member`` is ``None`` when ``url`` serves the file itself; otherwise ``url`` serves an archive
    (zip or tar, possibly gzip-compressed) and ``member`` is the file's path inside it.
    """

    url: str
    member: str | None = None


@dataclass(frozen=True)
class Resource:
    """One data file: its place in the cache/mirror layout, accepted checksums and sources.

    ``sha256`` lists every accepted checksum (several only where equally good copies with
    different bytes exist, see Olivetti); ``size`` is the canonical byte size (``None`` when the
    accepted copies differ in size), used in messages only; ``sources`` are tried in order.
    """

    dataset: str
    path: str
    sha256: tuple[str, ...]
    size: int | None
    sources: tuple[Source, ...]
    description: str = ""

    @property
    def key(self) -> str:
        """``"<dataset>/<path>"``, the registry key and the file's relative path in cache and mirror."""
        return f"{self.dataset}/{self.path}"

    @property
    def url(self) -> str:
        """The canonical (first) download URL."""
        return self.sources[0].url


def _res(dataset: str, path: str, sha256: str | tuple[str, ...], size: int | None,
         sources: tuple[Source, ...], description: str = "") -> Resource:
    checksums = (sha256,) if isinstance(sha256, str) else tuple(sha256)
    return Resource(dataset, path, checksums, size, sources, description)


# ---------------------------------------------------------------------------------------- MNIST
_MNIST_URLS = ("http://yann.lecun.com/exdb/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/")
_MNIST = {
    "train-images-idx3-ubyte.gz": (9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    "train-labels-idx1-ubyte.gz": (28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    "t10k-images-idx3-ubyte.gz": (1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    "t10k-labels-idx1-ubyte.gz": (4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
}

# Fashion-MNIST is not in the offline mirror (its image files are too large); loaded by download.
# Sizes and sha256 as published for the files of zalandoresearch/fashion-mnist (md5 in its README).
_FASHION_URLS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
_FASHION = {
    "train-images-idx3-ubyte.gz": (26421880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
    "train-labels-idx1-ubyte.gz": (29515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
    "t10k-images-idx3-ubyte.gz": (4422102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
    "t10k-labels-idx1-ubyte.gz": (5148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
}

# ------------------------------------------------------------------------------------- Olivetti
# The mirror's olivettifaces.mat was re-saved by MATLAB (other bytes, same 400 faces); scikit-learn's
# figshare copy has the first checksum. Both are accepted; both parse to the same images.
OLIVETTI_SHA256_FIGSHARE = "b612fb967f2dc77c9c62d3e1266e0c73d5fca46a4b8906c18e454d41af987794"
OLIVETTI_SHA256_MIRROR = "b1988d02c72fe5b8ee82b5ef3bb7982eafc74f1e1ff0ae0ade35061ad0af534d"

# ----------------------------------------------------------------------------------------- Cora
_CORA_URL = "https://github.com/kimiyoung/planetoid/raw/master/data/"
_CORA = {
    "x": (22119, "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab"),
    "y": (4054, "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1"),
    "tx": (148025, "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a"),
    "ty": (28135, "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad"),
    "allx": (257305, "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543"),
    "ally": (47959, "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71"),
    "graph": (59847, "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d"),
    "test.index": (5000, "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875"),
}

# ------------------------------------------------------------------------------------ MovieLens
# GroupLens' terms forbid redistribution: the course downloads the official zip and extracts it.
MOVIELENS_ZIP_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
_MOVIELENS = {
    "README": (6750, "4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52"),
    "u.data": (1979173, "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"),
    "u.genre": (202, "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb"),
    "u.info": (36, "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b"),
    "u.item": (236344, "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701"),
    "u.occupation": (193, "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d"),
    "u.user": (22628, "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c"),
    "u1.base": (1586544, "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a"),
    "u1.test": (392629, "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950"),
    "u2.base": (1583948, "6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e"),
    "u2.test": (395225, "4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3"),
    "u3.base": (1582546, "afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d"),
    "u3.test": (396627, "0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d"),
    "u4.base": (1581878, "219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca"),
    "u4.test": (397295, "7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9"),
    "u5.base": (1581776, "a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485"),
    "u5.test": (397397, "351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634"),
    "ua.base": (1792501, "67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2"),
    "ua.test": (186672, "d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42"),
    "ub.base": (1792476, "237254d253b6ad7de84f919d041055428646254f34ed8f562703c899430cd881"),
    "ub.test": (186697, "d54a72d05730d5892062734b2bec73e976f9b713d18c828a18b968d6cce442da"),
}

# ------------------------------------------------------------------------------------ UD EWT
_UD_URL = "https://raw.githubusercontent.com/UniversalDependencies/UD_English-EWT/r2.16/"
_UD = {
    "en_ewt-ud-train.conllu": (14203025, "3fb78e2b55482c8ee00caa653af436c88c9e5bc9a73ce26e4ae3ddc79d2b7e7b"),
    "en_ewt-ud-dev.conllu": (1805545, "531a54ff90d6ab12201c5a50c3e78e6ddac4de69abc4bce5d275d3cd29efe2b6"),
    "en_ewt-ud-test.conllu": (1804515, "e266e515a0a7547657ed3d90d9ba46487d6bd251f27ad4269d4e8a427c8555cd"),
    "LICENSE.txt": (20014, "b3d1b0f4c6ae151f7eb78738f46ebd5ee140f8a7f76501ba26af123140d35ae7"),
}

# ---------------------------------------------------------------------------------------- MR
MR_TARBALL_URL = "http://www.cs.cornell.edu/people/pabo/movie-review-data/rt-polaritydata.tar.gz"
_MR_RAW_URL = "https://raw.githubusercontent.com/yoonkim/CNN_sentence/master/"
_MR = {
    "rt-polarity.neg": (612256, "4ace77d558c3714723843f1d65b60c01e3417b208180f0728808d76ad0eeeaca"),
    "rt-polarity.pos": (626139, "2da124ec187a9d5a29c9f04e91c540e02baed5af8868f550a26bd6fd4dbf8bf0"),
}


def _build() -> dict[str, Resource]:
    entries: list[Resource] = []
    for name, (size, sha) in _MNIST.items():
        entries.append(_res("mnist", name, sha, size, tuple(Source(base + name) for base in _MNIST_URLS),
                            "MNIST handwritten digits (IDX, gzip)"))
    for name, (size, sha) in _FASHION.items():
        entries.append(_res("fashion-mnist", name, sha, size, tuple(Source(base + name) for base in _FASHION_URLS),
                            "Fashion-MNIST (IDX, gzip; not in the offline mirror)"))
    entries.append(_res(
        "olivetti-faces", "olivettifaces.mat", (OLIVETTI_SHA256_FIGSHARE, OLIVETTI_SHA256_MIRROR), None,
        (Source("https://cs.nyu.edu/~roweis/data/olivettifaces.mat"),
         Source("https://ndownloader.figshare.com/files/5976027")),
        "Olivetti faces, 400 x 64x64 (MATLAB file)"))
    entries.append(_res(
        "tiny-shakespeare", "input.txt", "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed", 1115394,
        (Source("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"),),
        "Tiny Shakespeare (char-rnn)"))
    for suffix, (size, sha) in _CORA.items():
        name = f"ind.cora.{suffix}"
        entries.append(_res("cora", name, sha, size, (Source(_CORA_URL + name),), "Cora, Planetoid format"))
    for name, (size, sha) in _MOVIELENS.items():
        entries.append(_res("movielens-100k", f"ml-100k/{name}", sha, size,
                            (Source(MOVIELENS_ZIP_URL, member=f"ml-100k/{name}"),),
                            "MovieLens 100K (extracted from GroupLens' official zip; no redistribution)"))
    for name, (size, sha) in _UD.items():
        entries.append(_res("ud-english-ewt", name, sha, size, (Source(_UD_URL + name),),
                            "UD English-EWT r2.16 (CoNLL-U)"))
    for name, (size, sha) in _MR.items():
        entries.append(_res("mr-polarity", name, sha, size,
                            (Source(MR_TARBALL_URL, member=f"rt-polaritydata/{name}"), Source(_MR_RAW_URL + name)),
                            "MR sentence polarity v1.0 (Latin-1)"))
    entries.append(_res(
        "nltk_data", "corpora/brown.zip", "9b275f9b3b95d7bd66ccfb7cd259f445a13bbe5d1f4107aba09fd3e8364bafa6", 3314357,
        (Source("https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/packages/corpora/brown.zip"),),
        "Brown Corpus (NLTK's brown.zip)"))
    return {entry.key: entry for entry in entries}


REGISTRY: dict[str, Resource] = _build()
"""Every known data file, keyed by ``"<dataset>/<path>"``.

:meta hide-value:
"""
