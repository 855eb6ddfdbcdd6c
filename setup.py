"""The one compiled module: the consumer's fused row reader (consumer/nativerow.pyx).

Everything else is in pyproject.toml. The extension is optional: without a C compiler the
install still succeeds and the consumer uses the generated Python reader (it logs which one).
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [Extension("consumer.nativerow", ["consumer/nativerow.pyx"], optional=True)],
        compiler_directives={"language_level": "3"},
    )
)
