"""The .sw model language: lexer, parser, AST, graph IR, validation, shape inference and optimisation passes."""

__version__ = "0.1.0"
