# Sphinx configuration of the noreboot.xen docs site (`make docs`, docs/docs.mk).
# Laid out by `antsibull-docs sphinx-init --use-current noreboot.xen` (antsibull-docs 2.28.0), then
# made to build offline: the only intersphinx inventory is written here, and the guides are
# included from their Markdown sources.
import os
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(REPO, 'docs', 'build')

project = 'noreboot.xen'
copyright = 'noreboot.xen contributors'

title = 'noreboot.xen documentation'
html_short_title = 'noreboot.xen documentation'

extensions = ['sphinx.ext.intersphinx', 'sphinx_antsibull_ext', 'myst_parser']

pygments_style = 'ansible'

highlight_language = 'YAML+Jinja'

html_theme = 'sphinx_ansible_theme'
html_show_sphinx = False

display_version = False

html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False

default_role = 'any'

nitpicky = True

# The pages antsibull-docs writes link to a few pages of Ansible's own documentation. Their
# inventory is not fetched (the build is offline): it is written here, naming only those pages.
ANSIBLE_DOCS = 'https://docs.ansible.com/projects/ansible/devel/'
ANSIBLE_LABELS = [
    ('ansible_configuration_settings', 'reference_appendices/config.html#ansible-configuration-settings',
     'Ansible Configuration Settings'),
    ('common_return_values', 'reference_appendices/common_return_values.html#common-return-values',
     'Return Values'),
    ('callback_plugins', 'plugins/callback.html#callback-plugins', 'Callback plugins'),
    ('ansible_collections.ansible.builtin.copy_module',
     'collections/ansible/builtin/copy_module.html#ansible-collections-ansible-builtin-copy-module',
     'ansible.builtin.copy module'),
]


def _write_inventory(path):
    lines = ''.join('%s std:label -1 %s %s\n' % label for label in ANSIBLE_LABELS)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as handle:
        handle.write(b'# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n'
                     b'# The remainder of this file is compressed using zlib.\n')
        handle.write(zlib.compress(lines.encode('utf-8')))


ANSIBLE_INVENTORY = os.path.join(BUILD, 'ansible_devel.inv')
_write_inventory(ANSIBLE_INVENTORY)
intersphinx_mapping = {'ansible_devel': (ANSIBLE_DOCS, ANSIBLE_INVENTORY)}

# A guide is written once, in Markdown (docs/<name>.md). Its page in docs/docsite/rst/ is a label
# and the comment `.. noreboot-xen-guide: <name>.md` (antsibull-docs' lint reads the page as
# plain RST); here the comment becomes an include of the Markdown file, parsed by MyST.
GUIDE_MARKER = '.. noreboot-xen-guide: '
myst_heading_anchors = 3


def _include_guides(app, docname, source):
    lines = []
    for line in source[0].splitlines():
        if line.startswith(GUIDE_MARKER):
            name = os.path.basename(line[len(GUIDE_MARKER):].strip())
            page_dir = os.path.dirname(os.path.join(str(app.srcdir), docname))
            lines.append('.. include:: %s' % os.path.relpath(os.path.join(REPO, 'docs', name), page_dir))
            lines.append('   :parser: myst_parser.sphinx_')
        else:
            lines.append(line)
    source[0] = '\n'.join(lines) + '\n'


def setup(app):
    app.connect('source-read', _include_guides)


# The theme's default top bar and side links point at Ansible's own sites (blog, forum, docs);
# this site is the collection's alone.
html_theme_options = {'topbar_links': {}, 'show_extranav': False}
