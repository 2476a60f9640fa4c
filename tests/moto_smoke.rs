//! Pins the harness and how moto's Firehose delivers records to S3, which the other integration
//! tests rely on.

mod common;

use common::{
    create_bucket, create_delivery_stream_to_bucket, firehose_client, put_record_batch,
    read_all_objects, s3_client, Moto,
};

#[tokio::test]
async fn firehose_batch_lands_as_one_object_with_records_concatenated_in_order() {
    let moto = Moto::start();
    let s3 = s3_client(&moto).await;
    let firehose = firehose_client(&moto).await;
    create_bucket(&s3, "delivered").await;
    create_delivery_stream_to_bucket(&firehose, "audit", "delivered").await;

    let records: [&[u8]; 3] = [b"{\"n\":1}\n", b"{\"n\":2}\n{\"n\":3}\n", b"no newline"];
    put_record_batch(&firehose, "audit", &records).await;

    let objects = read_all_objects(&s3, "delivered", "").await;
    assert_eq!(objects.len(), 1, "one object per call: {objects:?}");
    let (key, body) = &objects[0];
    assert_eq!(
        body,
        &records.concat(),
        "records concatenated in order, nothing added"
    );
    // YYYY/MM/DD/HH/audit-1-YYYY-MM-DD-HH-MM-SS-<uuid>: hour partitions, then the stream name.
    let parts: Vec<&str> = key.split('/').collect();
    assert_eq!(parts.len(), 5, "{key}");
    assert!(parts[4].starts_with("audit-1-"), "{key}");
}

#[tokio::test]
async fn each_put_record_batch_call_is_its_own_object() {
    let moto = Moto::start();
    let s3 = s3_client(&moto).await;
    let firehose = firehose_client(&moto).await;
    create_bucket(&s3, "delivered").await;
    create_delivery_stream_to_bucket(&firehose, "audit", "delivered").await;

    put_record_batch(&firehose, "audit", &[b"a\n", b"b\n"]).await;
    put_record_batch(&firehose, "audit", &[b"c\n"]).await;

    let mut bodies: Vec<Vec<u8>> = read_all_objects(&s3, "delivered", "")
        .await
        .into_iter()
        .map(|(_, body)| body)
        .collect();
    // Keys of calls within one second sort randomly, so compare the bodies as a set.
    bodies.sort();
    assert_eq!(bodies, vec![b"a\nb\n".to_vec(), b"c\n".to_vec()]);
    assert_eq!(
        common::delivered_lines(&s3, "delivered").await,
        vec!["a", "b", "c"]
    );
}
