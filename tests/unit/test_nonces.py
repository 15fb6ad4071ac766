"""GCM nonces: a nonce used twice with one key breaks AES-GCM, so none is ever handed out twice."""

import multiprocessing
import threading

from gateway.store.encryption import NONCE_BYTES, NonceSource


def test_nonces_are_twelve_bytes_and_never_repeat_across_draws_and_threads():
    source = NonceSource(per_draw=16)  # many refills
    taken: list[bytes] = []

    def take_many():
        taken.extend(source.take() for _ in range(2000))

    threads = [threading.Thread(target=take_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 8000
    assert {len(n) for n in taken} == {NONCE_BYTES}
    assert len(set(taken)) == len(taken)


def _child_takes(source: NonceSource, sent) -> None:
    sent.send(source.take())


def test_a_forked_child_does_not_repeat_its_parents_next_nonces():
    source = NonceSource()
    source.take()  # the parent's pool holds the rest of a draw when it forks
    context = multiprocessing.get_context("fork")
    received, sent = context.Pipe(duplex=False)
    child = context.Process(target=_child_takes, args=(source, sent))
    child.start()
    child_nonce = received.recv()
    child.join()
    assert child_nonce != source.take()
