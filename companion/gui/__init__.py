"""The desktop app: a thin PySide6 layer over the Qt-free core.

Only modules in this package may import PySide6 or pyqtgraph.
"""
