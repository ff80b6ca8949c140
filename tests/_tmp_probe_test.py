import time
def test_f(tiny_runs):
    print(tiny_runs)
