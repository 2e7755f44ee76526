export ANSIBLE_COLLECTIONS_PATH=/work/integration/.cache/collections PYTHONPATH=/work/integration/.cache/collections ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false PATH=/work/integration/.venv/bin:$PATH
