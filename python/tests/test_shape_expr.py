import pytest

from attnc.errors import ManifestError
from attnc.shape_expr import evaluate


@pytest.mark.parametrize(
    'expr, env, want',
    [
        ('top + 1 + 2', {'top': 13}, 16),
        ('budget + 0 + 0', {'budget': 2048}, 2048),
        ('cdiv(Nk, 16)', {'Nk': 33}, 3),
        ('cdiv(Nk, 16)', {'Nk': 32}, 2),
        ('cdiv(0, 16)', {}, 0),
        ('B * Hkv * (cdiv(Nk, 64) + 1) * 64', {'B': 2, 'Hkv': 3, 'Nk': 65}, 2 * 3 * 3 * 64),
        ('-3 * -2', {}, 6),
        ('10 - 2 - 3', {}, 5),
        ('  7 ', {}, 7),
    ],
)
def test_values(expr, env, want):
    assert evaluate(expr, env) == want


@pytest.mark.parametrize(
    'expr, message',
    [
        ('', 'expected a number, a name, cdiv( or ( at the end'),
        ('x + 1', 'unknown name "x" at column 1 (known: y)'),
        ('1 +', 'expected a number, a name, cdiv( or ( at the end'),
        ('cdiv(1, 0)', 'cdiv at column 1 divides by 0'),
        ('(1', "expected ')' at the end"),
        ('1 2', 'unexpected "2" at column 3'),
        ('2 ^ 3', 'unexpected "^" at column 3'),
        ('cdiv(1 2)', 'expected "," at column 8, got "2"'),
    ],
)
def test_errors_name_the_expression_and_column(expr, message):
    with pytest.raises(ManifestError) as e:
        evaluate(expr, {'y': 1})
    assert str(e.value) == f'shape expression "{expr}": {message}'
