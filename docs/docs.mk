# The collection's documentation (included from the top Makefile):
#   make docs-lint   antsibull-docs' lint of the plugin docs, the extra docs and the links
#   make docs        the HTML docs site, offline, into docs/build/html; a Sphinx warning fails it
.PHONY: docs-lint docs
DOCS_BUILD := $(REPO)/docs/build

$(VENV)/.installed: requirements/docs.txt

docs-lint: setup
	$(BIN)/antsibull-docs lint-collection-docs --plugin-docs .

docs: setup
	@rm -rf $(DOCS_BUILD)
	@mkdir -p $(DOCS_BUILD)/rst && chmod og-w $(DOCS_BUILD)/rst
	$(BIN)/antsibull-docs --config-file docs/sphinx/antsibull-docs.cfg collection --use-current --fail-on-error \
	  --dest-dir $(DOCS_BUILD)/rst noreboot.xen >/dev/null
	cp docs/sphinx/index.rst $(DOCS_BUILD)/rst/index.rst
	$(BIN)/sphinx-build -q -W --keep-going -b html -c docs/sphinx -d $(DOCS_BUILD)/doctrees $(DOCS_BUILD)/rst $(DOCS_BUILD)/html
	@echo "docs: $(DOCS_BUILD)/html/index.html"
