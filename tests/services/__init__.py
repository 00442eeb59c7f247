"""Real services the tests start: throwaway servers on temp dirs and free ports."""
