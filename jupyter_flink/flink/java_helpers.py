"""Java helpers shipped as source and compiled inside PyFlink's JVM with Janino.

Flink bundles Janino (it compiles generated code with it), so the helpers need neither a
JDK on the user's machine nor a binary in the package. Compiled once per JVM.
"""

from __future__ import annotations

import threading
from importlib import resources
from typing import Any

_lock = threading.Lock()
_classes: dict[tuple[int, str], Any] = {}


def load_class(gateway: Any, source_name: str, class_name: str) -> Any:
    """The ``java.lang.Class`` compiled from ``jupyter_flink/java/<source_name>``."""
    key = (id(gateway), class_name)
    with _lock:
        if key not in _classes:
            source = resources.files(__package__).joinpath("java", source_name).read_text()
            _classes[key] = compile_class(gateway, source, class_name)
        return _classes[key]


def compile_class(gateway: Any, source: str, class_name: str) -> Any:
    """Compile Java ``source`` in the JVM and return the class named ``class_name``."""
    jvm = gateway.jvm
    compiler = jvm.org.codehaus.janino.SimpleCompiler()
    compiler.setParentClassLoader(jvm.Thread.currentThread().getContextClassLoader())
    compiler.cook(source)
    return compiler.getClassLoader().loadClass(class_name)


def new_instance(gateway: Any, java_class: Any, *args: Any) -> Any:
    """``new JavaClass(args...)`` for a class py4j cannot name (it lives in Janino's loader)."""
    array = gateway.new_array(gateway.jvm.Object, len(args))
    for index, value in enumerate(args):
        array[index] = value
    return java_class.getConstructors()[0].newInstance(array)


def invoke_static(gateway: Any, java_class: Any, name: str, param_types: list[str],
                  *args: Any) -> Any:
    """Call a static method of a class py4j cannot name, by reflection."""
    jvm = gateway.jvm
    types = gateway.new_array(jvm.Class, len(param_types))
    for index, type_name in enumerate(param_types):
        types[index] = jvm.Class.forName(type_name)
    values = gateway.new_array(jvm.Object, len(args))
    for index, value in enumerate(args):
        values[index] = value
    return java_class.getMethod(name, types).invoke(None, values)
