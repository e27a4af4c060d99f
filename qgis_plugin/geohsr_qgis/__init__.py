"""geohsr QGIS plugin: a Processing provider that runs the geohsr CLI as a subprocess."""


def classFactory(iface):  # noqa: N802  (QGIS API name)
    from .plugin import GeohsrPlugin

    return GeohsrPlugin(iface)
