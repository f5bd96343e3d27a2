"""A dataset smaller than one batch: batches repeat its images, resumably and shard by shard."""
from yolact.data.sampler import ResumableBatchSampler


def test_each_batch_holds_every_image_of_a_tiny_dataset():
    sampler = ResumableBatchSampler(dataset_size=5, batch_size=8, seed=1)
    batches = iter(sampler)
    for iteration in range(4):
        keys = next(batches)
        assert len(keys) == 8 and keys == sampler.batch_at(iteration)
        assert {key.index for key in keys} == set(range(5))
        pairs = [(key.index, key.epoch) for key in keys]
        assert len(set(pairs)) == 8  # a repeated image comes from another epoch: another augmentation


def test_tiny_dataset_resumes_and_shards_like_one_process():
    single = ResumableBatchSampler(dataset_size=3, batch_size=8, seed=2)
    resumed = next(iter(ResumableBatchSampler(dataset_size=3, batch_size=8, seed=2, start_iteration=5)))
    assert resumed == single.batch_at(5)
    shards = [ResumableBatchSampler(dataset_size=3, batch_size=4, seed=2, rank=rank, world_size=2).batch_at(5)
              for rank in range(2)]
    assert shards[0] + shards[1] == single.batch_at(5)


def test_datasets_of_one_batch_or_more_keep_full_epochs():
    sampler = ResumableBatchSampler(dataset_size=10, batch_size=4, seed=3)
    assert not sampler.repeats_images and sampler.iterations_per_epoch == 2
    assert [key.epoch for key in sampler.batch_at(2)] == [1, 1, 1, 1]
