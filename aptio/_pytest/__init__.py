"""The pytest plugin's parts (the plugin itself is :mod:`aptio.pytest_plugin`): the marker's
options, the runtime and helper fixtures, the leak checks, the timeout dump."""
