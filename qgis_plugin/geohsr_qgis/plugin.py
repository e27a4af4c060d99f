"""Plugin entry: registers the Processing provider (also under qgis_process)."""

from qgis.core import QgsApplication


class GeohsrPlugin:
    def __init__(self, iface=None):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802  (QGIS API name)
        from .provider import GeohsrProvider

        self.provider = GeohsrProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
