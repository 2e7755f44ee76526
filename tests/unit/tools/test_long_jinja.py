"""tests/tools/long_jinja.py counts the issue 16 figure: Jinja expressions over a length."""
import importlib.util
import os

TOOL = os.path.join(os.path.dirname(__file__), '..', '..', 'tools', 'long_jinja.py')
SPEC = importlib.util.spec_from_file_location('long_jinja', TOOL)
long_jinja = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(long_jinja)


def test_one_line_spans_are_found_with_their_line_numbers():
    text = "a: \"{{ x }}\"\nb: \"{{ y | default('z') }} and {{ w }}\"\n"
    assert list(long_jinja.expressions(text)) == [
        (1, '{{ x }}'), (2, "{{ y | default('z') }}"), (2, '{{ w }}')]


def test_a_multi_line_span_is_one_expression_with_white_space_folded():
    text = "msg: >-\n  {{ a\n     | b\n     | c }}\nnext: 1\n"
    assert list(long_jinja.expressions(text)) == [(2, '{{ a | b | c }}')]


def test_nested_braces_end_at_the_matching_close():
    text = "v: \"{{ {'k': {'n': 1}} }}\" tail {{ t }}"
    assert [expression for _line, expression in long_jinja.expressions(text)] == ["{{ {'k': {'n': 1}} }}", '{{ t }}']


def test_an_unclosed_span_is_not_counted():
    assert list(long_jinja.expressions('a: {{ x }} b: {{ y')) == [(1, '{{ x }}')]


def test_only_expressions_longer_than_the_limit_are_reported(tmp_path):
    play = tmp_path / 'play.yml'
    play.write_text("a: \"{{ '%s' }}\"\nb: \"{{ '%s' }}\"\n" % ('x' * 10, 'y' * 80))
    (tmp_path / 'notes.txt').write_text('{{ %s }}' % ('z' * 100))
    found = long_jinja.long_expressions([str(tmp_path)], 80)
    assert found == [(str(play), 2, len("{{ '%s' }}" % ('y' * 80)))]
