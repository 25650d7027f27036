"""The plugin contract: one hook per component family, each handed a `register` callback."""

import pluggy

hookspec = pluggy.HookspecMarker("nnsim")
hookimpl = pluggy.HookimplMarker("nnsim")


@hookspec
def register_activations(register):
    """Register Activation subclasses: call register(cls) once for each."""


@hookspec
def register_initializers(register):
    """Register Initializer subclasses: call register(cls) once for each."""


@hookspec
def register_normalizers(register):
    """Register Normalizer subclasses: call register(cls) once for each."""


@hookspec
def register_optimizers(register):
    """Register Optimizer subclasses: call register(cls) once for each."""


@hookspec
def register_datasets(register):
    """Register Dataset subclasses: call register(cls) once for each."""


@hookspec
def register_lessons(register):
    """Register Lesson subclasses: call register(cls) once for each."""


@hookspec
def register_checks(register):
    """Register DoctorCheck subclasses: call register(cls) once for each."""
