"""The geohsr Processing provider and its algorithms."""

from __future__ import annotations

import os

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingProvider,
)
from qgis.PyQt.QtGui import QIcon

from . import runner

SETTING_CLI = "GEOHSR_CLI_PATH"
# The METHOD values are the method names themselves (static strings), so a saved model or a
# `qgis_process` call means the same method whatever environment runs it. The built-in names are
# always offered; methods another environment registers are appended.
BUILTIN_METHODS = ["auto", "bicubic", "dualsr", "coarsr", "mulsr", "ifmsr", "snlsr", "a-snlsr", "mtf-glp", "gsa",
                   "dualsr-glp"]
DEFAULT_METHOD = "auto"  # the CLI's default
DEVICES = ["auto", "cpu", "cuda"]
DTYPES = ["input", "uint8", "uint16", "int16", "int32", "float32", "float64"]
FORMATS = ["from extension", "gtiff", "cog", "envi"]


def _setting() -> str | None:
    try:
        from processing.core.ProcessingConfig import ProcessingConfig

        v = ProcessingConfig.getSetting(SETTING_CLI)
        return v or None
    except Exception:  # noqa: BLE001  (processing not initialised)
        return None


def _prefix() -> list[str]:
    try:
        return runner.find_cli(_setting())
    except runner.CliNotFound as exc:
        raise QgsProcessingException(str(exc)) from None


def _layer_path(layer) -> str:
    """The file geohsr opens for a layer: the layer's file, or the whole sensor product behind a
    layer that shows one part of it (a PRISMA HDF5 subdataset: as the input, the cube; as the
    guide, its pan)."""
    src = layer.source().split("|")[0]
    product = runner.product_file(src)
    if product is not None and os.path.exists(product):
        return product
    if not os.path.exists(src):
        raise QgsProcessingException(f"layer {layer.name()!r} is not a file on disk ({src}); "
                                     "save it as GeoTIFF first")
    return src


def _run(args, feedback) -> str:
    try:
        return runner.run(args, on_progress=feedback.setProgress, on_log=feedback.pushInfo,
                          is_cancelled=feedback.isCanceled)
    except runner.Cancelled as exc:
        feedback.reportError(str(exc))
        raise QgsProcessingException(str(exc)) from None
    except runner.CliFailed as exc:
        raise QgsProcessingException(str(exc)) from None


class _GeohsrAlgorithm(QgsProcessingAlgorithm):
    """What every geohsr algorithm shares: group and icon."""

    def group(self):
        return "Super-resolution"

    def groupId(self):  # noqa: N802
        return "superresolution"

    def icon(self):
        return QIcon(os.path.join(os.path.dirname(__file__), "icon.svg"))


class SuperResolveAlgorithm(_GeohsrAlgorithm):
    INPUT, METHOD, SCALE, GUIDE, WEIGHTS, DEVICE, OUTPUT = (
        "INPUT", "METHOD", "SCALE", "GUIDE", "WEIGHTS", "DEVICE", "OUTPUT")
    ADAPT, CLIP, DTYPE, FORMAT, MEMORY = "ADAPT", "CLIP", "DTYPE", "FORMAT", "MEMORY_LIMIT"
    ADAPT_PSF, ENSEMBLE, MTF_GAIN = "ADAPT_PSF", "ENSEMBLE", "MTF_GAIN"

    def __init__(self, method_names=None):
        super().__init__()
        self.method_names = list(dict.fromkeys(BUILTIN_METHODS + list(method_names or [])))

    def name(self):
        return "superresolve"

    def displayName(self):  # noqa: N802
        return "Super-resolve raster"

    def shortHelpString(self):  # noqa: N802
        return ("Super-resolves a hyperspectral raster by an integer scale. The output keeps the "
                "CRS, extent, band wavelengths, nodata and data type; its pixels are scale times "
                "smaller. Runs the geohsr command line of the configured environment.")

    def createInstance(self):  # noqa: N802
        return SuperResolveAlgorithm(self.method_names)

    def initAlgorithm(self, config=None):  # noqa: N802
        p = QgsProcessingParameterRasterLayer(self.INPUT, "Input hyperspectral raster")
        p.setHelp("Raster to super-resolve (GeoTIFF, ENVI, …), bands = spectral bands.")
        self.addParameter(p)
        p = QgsProcessingParameterEnum(self.METHOD, "Method", options=self.method_names,
                                       defaultValue=DEFAULT_METHOD)
        p.setUsesStaticStrings(True)  # the value is the name (METHOD=dualsr), never a position
        p.setHelp("Super-resolution method by name (`geohsr methods` lists them with their inputs and "
                  "scales); auto: with a guide the candidate best on this scene, else DualSR where "
                  "shipped weights cover the scale, else bicubic.")
        self.addParameter(p)
        p = QgsProcessingParameterNumber(self.SCALE, "Scale factor", QgsProcessingParameterNumber.Integer,
                                         defaultValue=4, minValue=2, maxValue=16)
        p.setHelp("Integer factor: the output pixel size is the input's divided by it.")
        self.addParameter(p)
        p = QgsProcessingParameterRasterLayer(self.GUIDE, "High-resolution guide (RGB/pan)", optional=True)
        p.setHelp("For guided methods (MulSR, IFMSR, MTF-GLP, GSA, DualSR-GLP; and auto, which then measures "
                  "them on the scene): a high-resolution image (pan, RGB(N), multispectral) of the same area.")
        self.addParameter(p)
        p = QgsProcessingParameterString(self.MTF_GAIN, "Scene sensor's MTF gain (measure or 0.15-0.95)",
                                         defaultValue="measure")
        p.setHelp("For MTF-GLP, GSA, DualSR-GLP and auto: measure (the scene's blur measured against the "
                  "guide, plus the guide sensor's own) or the Gaussian MTF gain at the scene's Nyquist, "
                  "between 0.15 and 0.95, e.g. 0.3 (geohsr run --mtf-gain).")
        p.setFlags(p.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(p)
        p = QgsProcessingParameterFile(self.WEIGHTS, "Weights file", optional=True,
                                       fileFilter="safetensors (*.safetensors)")
        p.setHelp("Your own trained weights (.safetensors) instead of the shipped ones.")
        self.addParameter(p)
        p = QgsProcessingParameterEnum(self.DEVICE, "Device", options=DEVICES, defaultValue=0)
        p.setHelp("auto uses a CUDA GPU when present, else the CPU.")
        self.addParameter(p)
        p = QgsProcessingParameterNumber(self.ADAPT, "Adapt to this scene for up to N minutes (0: no)",
                                         QgsProcessingParameterNumber.Double, defaultValue=0.0,
                                         minValue=0.0, maxValue=600.0)
        p.setHelp("DualSR/CoarSR/DualSR-GLP, MulSR/IFMSR (with the guide), SNLSR/A-SNLSR: first fine-tune the network on "
                  "this scene at reduced resolution; a "
                  "held-out strip decides whether the adapted weights are used, and ends the adaptation early "
                  "once it stops improving (geohsr run --adapt).")
        self.addParameter(p)
        p = QgsProcessingParameterString(self.ADAPT_PSF, "Adaptation: how the scene is reduced", defaultValue="gaussian")
        p.setHelp("gaussian (gain 0.3 at Nyquist), gaussian:GAIN, bicubic (MATLAB, anti-aliased) or the path of a "
                  "measured PSF (.npy, or .mat with 'data'); used only when adapting (geohsr run --adapt-psf).")
        p.setFlags(p.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(p)
        p = QgsProcessingParameterBoolean(self.ENSEMBLE, "Self-ensemble (8 flips/rotations averaged)",
                                          defaultValue=False)
        p.setHelp("Learned methods: average the network's output over the 8 flips and 90° rotations of "
                  "each block; higher PSNR for 8× the network's time (geohsr run --ensemble).")
        p.setFlags(p.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(p)
        p = QgsProcessingParameterString(self.CLIP, "Clip output values", defaultValue="auto")
        p.setHelp("auto: at 0 from below when the data cannot be negative (unsigned type or GDAL "
                  "scale/offset); none; LO or LO,HI, e.g. 0,10000 (geohsr run --clip).")
        self.addParameter(p)
        p = QgsProcessingParameterEnum(self.DTYPE, "Output data type", options=DTYPES, defaultValue=DTYPES[0])
        p.setUsesStaticStrings(True)
        p.setHelp("input: the input's data type (geohsr run --dtype).")
        self.addParameter(p)
        p = QgsProcessingParameterEnum(self.FORMAT, "Output format", options=FORMATS, defaultValue=FORMATS[0])
        p.setUsesStaticStrings(True)
        p.setHelp("from extension: GeoTIFF unless the output's extension says otherwise; cog: a "
                  "Cloud-Optimised GeoTIFF; envi: ENVI .hdr + binary (geohsr run --format).")
        self.addParameter(p)
        p = QgsProcessingParameterNumber(self.MEMORY, "Memory limit (MB, 0: geohsr's default)",
                                         QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0)
        p.setHelp("The memory budget that sets the block size, at least 700 MB (geohsr run --memory-limit).")
        self.addParameter(p)
        p = QgsProcessingParameterRasterDestination(self.OUTPUT, "Super-resolved raster")
        p.setHelp("Output GeoTIFF (written atomically: nothing is left behind on error or cancel).")
        self.addParameter(p)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException("no input raster given")
        method = self.parameterAsEnumString(parameters, self.METHOD, context) or DEFAULT_METHOD
        scale = self.parameterAsInt(parameters, self.SCALE, context)
        out = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        args = _prefix() + ["run", _layer_path(layer), "--scale", str(scale), "--method", method,
                            "-o", out, "--overwrite", "--progress", "json", "--discard-partial",
                            "--device", DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)]]
        guide = self.parameterAsRasterLayer(parameters, self.GUIDE, context)
        if guide is not None:
            args += ["--guide", _layer_path(guide)]
            mtf = (self.parameterAsString(parameters, self.MTF_GAIN, context) or "measure").strip()
            if mtf.lower() != "measure":
                args += ["--mtf-gain", mtf]
        weights = self.parameterAsFile(parameters, self.WEIGHTS, context)
        if weights:
            args += ["--weights", weights]
        minutes = self.parameterAsDouble(parameters, self.ADAPT, context)
        if minutes > 0:
            args += ["--adapt", f"{minutes:g}"]
            psf = (self.parameterAsString(parameters, self.ADAPT_PSF, context) or "gaussian").strip()
            args += ["--adapt-psf", psf]
        if self.parameterAsBoolean(parameters, self.ENSEMBLE, context):
            args += ["--ensemble"]
        clip = (self.parameterAsString(parameters, self.CLIP, context) or "auto").strip()
        args += ["--clip", clip]
        dtype = self.parameterAsEnumString(parameters, self.DTYPE, context) or DTYPES[0]
        if dtype != DTYPES[0]:
            args += ["--dtype", dtype]
        fmt = self.parameterAsEnumString(parameters, self.FORMAT, context) or FORMATS[0]
        if fmt != FORMATS[0]:
            args += ["--format", fmt]
        memory = self.parameterAsInt(parameters, self.MEMORY, context)
        if memory > 0:
            args += ["--memory-limit", str(memory)]
        feedback.pushInfo("running: " + " ".join(args))
        _run(args, feedback)
        return {self.OUTPUT: out}


class EvaluateAlgorithm(_GeohsrAlgorithm):
    INPUT, METHODS, SCALE, GUIDE, OUTPUT = "INPUT", "METHODS", "SCALE", "GUIDE", "OUTPUT"

    def name(self):
        return "evaluate"

    def displayName(self):  # noqa: N802
        return "Evaluate super-resolution"

    def shortHelpString(self):  # noqa: N802
        return ("Wald protocol: degrades the raster by the scale, super-resolves it back with each "
                "method and compares with the original (PSNR, SSIM, SAM, ERGAS, RMSE). Bicubic is "
                "always included. With a high-resolution guide: the scene and the guide are reduced "
                "together, the full-resolution products are scored without a reference (QNR, D_λ, "
                "D_S) and the guide's measured offset is reported.")

    def createInstance(self):  # noqa: N802
        return EvaluateAlgorithm()

    def initAlgorithm(self, config=None):  # noqa: N802
        p = QgsProcessingParameterRasterLayer(self.INPUT, "Hyperspectral raster")
        p.setHelp("Scene to evaluate on (bad bands and nodata are left out).")
        self.addParameter(p)
        p = QgsProcessingParameterString(self.METHODS, "Methods (comma-separated)", defaultValue="",
                                         optional=True)
        p.setHelp("e.g. bicubic,dualsr; empty: bicubic, or with a guide every candidate of auto")
        self.addParameter(p)
        p = QgsProcessingParameterNumber(self.SCALE, "Scale factor", QgsProcessingParameterNumber.Integer,
                                         defaultValue=4, minValue=2, maxValue=16)
        p.setHelp("Degradation and super-resolution factor.")
        self.addParameter(p)
        p = QgsProcessingParameterRasterLayer(self.GUIDE, "High-resolution guide (pan, RGB, multispectral)",
                                              optional=True)
        p.setHelp("A real guide of another sensor: evaluates the guided methods on this pair at reduced "
                  "and at full resolution.")
        self.addParameter(p)
        p = QgsProcessingParameterFileDestination(self.OUTPUT, "Report", fileFilter="HTML (*.html);;Markdown (*.md)")
        p.setHelp("Metric table and the protocol that produced it.")
        self.addParameter(p)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        out = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        args = _prefix() + ["evaluate", _layer_path(layer),
                            "--scale", str(self.parameterAsInt(parameters, self.SCALE, context)),
                            "--report", out]
        methods = self.parameterAsString(parameters, self.METHODS, context).strip()
        if methods:
            args += ["--method", methods]
        guide = self.parameterAsRasterLayer(parameters, self.GUIDE, context)
        if guide is not None:
            args += ["--guide", _layer_path(guide)]
        feedback.pushInfo("running: " + " ".join(args))
        text = _run(args, feedback)
        for ln in text.splitlines():
            feedback.pushInfo(ln)
        return {self.OUTPUT: out}


class GeohsrProvider(QgsProcessingProvider):
    def __init__(self):
        super().__init__()
        self.method_names = None

    def id(self):
        return "geohsr"

    def name(self):
        return "geohsr"

    def longName(self):  # noqa: N802
        return "geohsr hyperspectral super-resolution"

    def icon(self):
        return QIcon(os.path.join(os.path.dirname(__file__), "icon.svg"))

    def load(self):
        try:
            from processing.core.ProcessingConfig import ProcessingConfig, Setting

            ProcessingConfig.addSetting(Setting(self.name(), SETTING_CLI, "geohsr executable "
                                                "(or a Python with geohsr installed)", "",
                                                valuetype=Setting.FILE))
            ProcessingConfig.readSettings()
        except Exception:  # noqa: BLE001
            pass
        self.refreshAlgorithms()
        return True

    def unload(self):
        try:
            from processing.core.ProcessingConfig import ProcessingConfig

            ProcessingConfig.removeSetting(SETTING_CLI)
        except Exception:  # noqa: BLE001
            pass

    def loadAlgorithms(self):  # noqa: N802
        if self.method_names is None:
            try:
                self.method_names = [m["name"] for m in runner.methods(runner.find_cli(_setting()))]
            except Exception:  # noqa: BLE001  (no environment yet: the run says how to set one up)
                self.method_names = []
        self.addAlgorithm(SuperResolveAlgorithm(self.method_names))
        self.addAlgorithm(EvaluateAlgorithm())
