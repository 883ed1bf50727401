"""loadLib finds the library this repository builds; the module mirrors liner.h."""
import importlib.util
import itertools
import os
import shutil
import sys

import pytest

import liner

LINER_PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                             "python", "liner")
_copies = itertools.count()


def fresh_module():
    """A second, independent copy of the liner package whose library is not loaded yet."""
    name = "liner_unloaded_%d" % next(_copies)
    spec = importlib.util.spec_from_file_location(name, os.path.join(LINER_PACKAGE, "__init__.py"),
                                                  submodule_search_locations=[LINER_PACKAGE])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its modules import each other by relative name, through sys.modules
    spec.loader.exec_module(module)
    return module


def test_load_lib_without_argument_finds_the_build():
    module = fresh_module()
    lib = module.load_lib()
    assert lib is module.lib_
    assert module.version()


def test_load_lib_is_seen_by_every_module_of_the_package(redis):
    # The loaded library is held once: the package, its settings and its clients all see it.
    module = fresh_module()
    assert module.lib_ is None
    lib = module.load_lib()
    assert module.lib_ is lib and module._library.lib_ is lib
    assert module.get_lease() == liner.get_lease()
    client = module.Client("one_library", "one_library_topic", "127.0.0.1:0", redis.url)
    assert client._lib is lib
    assert client.close() is True


def test_load_lib_keeps_liner_broker_name():
    assert liner.loadLib is liner.load_lib


def test_load_lib_with_explicit_path(redis):
    module = fresh_module()
    module.load_lib(liner.lib_._name)
    client = module.Client("explicit_path", "explicit_path_topic", "127.0.0.1:0", redis.url)
    assert client.close() is True


def test_load_lib_honours_liner_lib_env(monkeypatch, tmp_path):
    # A copy under another name: the default search would never find it, so only LINER_LIB can.
    copy = tmp_path / "libliner_elsewhere.so"
    shutil.copyfile(liner.lib_._name, copy)
    module = fresh_module()
    monkeypatch.setenv("LINER_LIB", str(copy))
    lib = module.loadLib()
    assert lib._name == str(copy)
    assert module.version() == liner.version()


def test_load_lib_prefers_the_library_inside_the_package(monkeypatch, tmp_path):
    # A wheel's layout (liner/libliner_broker.so) inside a repository-like tree that also has a
    # build/: the package's own copy wins, since it was built with this very Python code.
    monkeypatch.delenv("LINER_LIB", raising=False)
    package = tmp_path / "python" / "liner"
    shutil.copytree(LINER_PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(liner.lib_._name, package / "libliner_broker.so")
    (tmp_path / "build").mkdir()
    shutil.copyfile(liner.lib_._name, tmp_path / "build" / "libliner_broker.so")
    name = "liner_bundled_%d" % next(_copies)
    spec = importlib.util.spec_from_file_location(name, str(package / "__init__.py"),
                                                  submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    assert module.load_lib()._name == str(package / "libliner_broker.so")


def test_load_lib_bad_path_raises_liner_error(tmp_path):
    module = fresh_module()
    with pytest.raises(module.LinerError) as info:
        module.loadLib(str(tmp_path / "no_such_lib.so"))
    assert isinstance(info.value, Exception)
    assert module.lib_ is None


def test_client_before_load_lib_raises_lib_not_load(redis):
    module = fresh_module()
    with pytest.raises(module.LinerError) as info:
        module.Client("u", "t", "127.0.0.1:0", redis.url)
    assert "lib not load" in str(info.value)
    assert isinstance(info.value, Exception)


def test_version_is_a_liner_version_of_1_3_1():
    v = liner.version()
    assert isinstance(v, str)
    assert v.startswith("1.3.1"), v


def test_error_constants_mirror_liner_h():
    assert (liner.OK, liner.ERR_NOT_RUNNING, liner.ERR_ALREADY_RUNNING, liner.ERR_SELF_TOPIC,
            liner.ERR_INTERNAL_TOPIC, liner.ERR_NO_ADDR, liner.ERR_BIND, liner.ERR_STORE,
            liner.ERR_INVALID_ARG, liner.ERR_CLEAR_WHILE_RUNNING, liner.ERR_STARTUP,
            liner.ERR_BUSY) == tuple(range(12))


def test_liner_error_carries_code_and_message():
    e = liner.LinerError(liner.ERR_STORE, "redis down")
    assert isinstance(e, Exception)
    assert e.code == liner.ERR_STORE
    assert e.message == "redis down"
    assert str(e) == "redis down"
